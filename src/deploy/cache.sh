# shellcheck shell=sh
# Reusing the built environment (e.g. the venv) across releases, after functions.sh and with
# CACHE_DIR (the folder the release uses, e.g. `venv`), CACHE_KEY (files, folders or globs
# of the release, one a line: a folder counts with every file below it), CACHE_KEY_COMMAND
# (e.g. `python3 --version`) and CACHE_STEPS (the steps that build it, one a line) assigned. The environment lives in $ROOT/shared/cache/KEY/, KEY hashing the
# key files' names and contents, the steps and the key command's output; it is built there in
# place (a venv cannot move), with only the key files, and marked complete last; each release
# links CACHE_DIR to it. Unchanged inputs: no step runs at all. The app user owns
# $ROOT/shared and the release: everything here that touches them runs as the app user (the
# key command too, like a build step: it sees the env file's variables), root only hashes.
: "${CACHE_DIR:?}" "${CACHE_KEY_COMMAND:?}"
cache_link() {
  c_key=$(
    {
      # shellcheck disable=SC2016 # expanded by the app user's shell
      as_app sh -c 'cd -- "$1" || exit 1
        printf "%s\n" "$2" | while IFS= read -r k; do
          [ -n "$k" ] || continue
          printf "key %s\n" "$k"
          IFS=
          for f in $k; do
            if [ -d "$f" ]; then
              find "$f" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --
            elif [ -f "$f" ]; then
              sha256sum -- "$f"
            else
              printf "absent\n"
            fi
          done
        done' sh "$REL" "$CACHE_KEY" 2> /dev/null < /dev/null 9>&-
      printf 'steps\n%s\n' "$CACHE_STEPS"
      printf 'version\n'
      STEP=$CACHE_KEY_COMMAND run_step "$REL" 2>&1
    } | sha256sum | cut -c 1-16
  )
  C="$ROOT/shared/cache/$c_key"
  if as_app test -f "$C/.complete" < /dev/null 9>&-; then
    mark cache reused "$c_key"
  else
    # shellcheck disable=SC2016 # expanded by the app user's shell
    c_out=$(as_app sh -c 'rm -rf -- "$1" && mkdir -p -- "$1" && cd -- "$3" || exit 1
      printf "%s\n" "$2" | while IFS= read -r k; do
        [ -n "$k" ] || continue
        IFS=
        for f in $k; do
          [ -e "$f" ] || continue
          mkdir -p -- "$1/$(dirname -- "$f")" && cp -pR -- "$f" "$1/${f%/}" || exit 1
        done
      done' sh "$C" "$CACHE_KEY" "$REL" 2>&1 < /dev/null 9>&-) || fail cache "$c_out"
    mark cache building "$c_key"
    # The steps, one a line (no here-document: the host gets this file without its comment
    # lines, see src/shell/shipped.rs).
    c_rest=$CACHE_STEPS$NL
    while [ -n "$c_rest" ]; do
      STEP=${c_rest%%"$NL"*}
      c_rest=${c_rest#*"$NL"}
      [ -n "$STEP" ] || continue
      mark step "$STEP"
      out=$(run_step "$C" 2>&1) || {
        as_app rm -rf -- "$C" < /dev/null 9>&-
        build_failed "build step \`$STEP\`" "$out"
      }
    done < /dev/null
    as_app touch -- "$C/.complete" < /dev/null 9>&- || fail cache "cannot mark $C complete"
  fi
  # shellcheck disable=SC2016 # expanded by the app user's shell
  as_app sh -c 'rm -rf -- "$1" && ln -s -- "$2" "$1"' sh "$REL/$CACHE_DIR" "$C/$CACHE_DIR" < /dev/null 9>&- ||
    fail cache "cannot link $CACHE_DIR"
}

# cache_prune: remove every environment no release links to any more, as the app user (whose
# folders these are: root lists and deletes nothing there).
cache_prune() {
  # shellcheck disable=SC2016 # expanded by the app user's shell
  as_app sh -c 'for c in "$1/shared/cache"/*; do
      [ -d "$c" ] && [ ! -L "$c" ] || continue
      used=0
      for r in "$1/releases"/*; do
        [ "$(readlink -- "$r/$2" 2> /dev/null)" = "$c/$2" ] && used=1 && break
      done
      [ "$used" = 1 ] || rm -rf -- "$c"
    done' sh "$ROOT" "$CACHE_DIR" < /dev/null 9>&-
}
