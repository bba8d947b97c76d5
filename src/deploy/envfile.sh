# env_words FILE: the assignments of FILE, read as systemd reads an EnvironmentFile=
# (systemd.exec(5); the state machine of systemd's env-file.c), printed as single-quoted shell
# words 'KEY=VALUE' for `eval "env $(env_words F) CMD"`. FILE is data: nothing in it is run.
# Rules: `#`/`;` start a comment line; a line without `=` is ignored; KEY is trimmed and must
# be [A-Za-z_][A-Za-z0-9_]*; unquoted values lose leading and trailing blanks, a backslash keeps
# the next character (a backslash-newline joins lines); '...' is verbatim; in "..." only \" \\
# \` \$ are escapes and backslash-newline joins lines; quoted and unquoted parts concatenate;
# control characters are kept (systemd 252, Debian 12's, keeps them too).
env_words() {
  if [ -n "$(tail -c 1 -- "$1")" ]; then env_nl=0; else env_nl=1; fi
  awk -v endnl="$env_nl" '
    function push() {
      sub(/[ \t]+$/, "", key)
      if (key ~ /^[A-Za-z_][A-Za-z0-9_]*$/) {
        v = key "=" value
        gsub(/\047/, "\047\\\047\047", v)
        printf "\047%s\047 ", v
      }
      key = ""; value = ""
    }
    BEGIN {
      state = "PRE_KEY"; key = ""; value = ""; text = ""
    }
    { text = text $0 "\n" }
    END {
      if (!endnl) text = substr(text, 1, length(text) - 1)
      n = length(text)
      for (i = 1; i <= n; i++) {
        c = substr(text, i, 1)
        nl = (c == "\n" || c == "\r")
        ws = (c == " " || c == "\t" || nl)
        if (state == "PRE_KEY") {
          if (c == "#" || c == ";") state = "COMMENT"
          else if (!ws) { state = "KEY"; key = c }
        } else if (state == "KEY") {
          if (nl) { state = "PRE_KEY"; key = "" }
          else if (c == "=") { state = "PRE_VALUE"; value = "" }
          else key = key c
        } else if (state == "PRE_VALUE") {
          if (nl) { state = "PRE_KEY"; push() }
          else if (c == "\047") state = "SQ"
          else if (c == "\"") state = "DQ"
          else if (c == "\\") state = "ESC"
          else if (!ws) { state = "VALUE"; value = value c; tail = "" }
        } else if (state == "VALUE") {
          if (nl) { state = "PRE_KEY"; push() }
          else if (c == "\\") { state = "ESC"; value = value tail; tail = "" }
          else if (c == " " || c == "\t") tail = tail c
          else { value = value tail c; tail = "" }
        } else if (state == "ESC") {
          state = "VALUE"; tail = ""
          if (c != "\n" && c != "\r") value = value c
        } else if (state == "SQ") {
          if (c == "\047") state = "PRE_VALUE"
          else value = value c
        } else if (state == "DQ") {
          if (c == "\"") state = "PRE_VALUE"
          else if (c == "\\") state = "DQ_ESC"
          else value = value c
        } else if (state == "DQ_ESC") {
          state = "DQ"
          if (c == "\"" || c == "\\" || c == "`" || c == "$") value = value c
          else if (c != "\n") value = value "\\" c
        } else if (state == "COMMENT") {
          if (c == "\\") state = "COMMENT_ESC"
          else if (nl) state = "PRE_KEY"
        } else if (state == "COMMENT_ESC") {
          state = "COMMENT"
        }
      }
      if (state != "PRE_KEY" && state != "KEY" && state != "COMMENT" && state != "COMMENT_ESC") push()
    }' "$1"
}
