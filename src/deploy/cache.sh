# shellcheck shell=sh
# Reusing the built environment (e.g. the venv) across releases, after functions.sh and with
# CACHE_DIR (the folder the release uses, e.g. `venv`), CACHE_KEY (files of the release, one
# a line), CACHE_KEY_COMMAND (e.g. `python3 --version`) and CACHE_STEPS (the steps that build
# it, one a line) assigned. The environment lives in $ROOT/shared/cache/KEY/, KEY hashing the
# key files' names and contents, the steps and the key command's output; it is built there in
# place (a venv cannot move), with only the key files, and marked complete last; each release
# links CACHE_DIR to it. Unchanged inputs: no step runs at all.
: "${CACHE_DIR:?}" "${CACHE_KEY_COMMAND:?}"
cache_link() {
  c_key=$(
    {
      printf '%s\n' "$CACHE_KEY" | while IFS= read -r f; do
        [ -n "$f" ] || continue
        printf 'file %s\n' "$f"
        as_app cat -- "$REL/$f" 2> /dev/null < /dev/null || printf 'absent\n'
      done
      printf 'steps\n%s\n' "$CACHE_STEPS"
      printf 'version\n'
      (cd "$REL" && MICROCTL_ENV=$ENV_WORDS timeout -k 5 "$TIMEOUT" /bin/sh -c "$ENV_RUN" sh "$CACHE_KEY_COMMAND") 2>&1 < /dev/null 9>&-
    } | sha256sum | cut -c 1-16
  )
  C="$ROOT/shared/cache/$c_key"
  if [ -f "$C/.complete" ]; then
    mark cache reused "$c_key"
  else
    # The app user owns $ROOT/shared and all below it: root writes nothing there itself (a
    # link planted there would take root's write elsewhere).
    # shellcheck disable=SC2016 # expanded by the app user's shell
    c_out=$(as_app sh -c 'rm -rf -- "$1" && mkdir -p -- "$1" || exit 1
      printf "%s\n" "$2" | while IFS= read -r f; do
        if [ -z "$f" ] || [ ! -e "$3/$f" ]; then continue; fi
        mkdir -p -- "$1/$(dirname -- "$f")" && cp -p -- "$3/$f" "$1/$f" || exit 1
      done' sh "$C" "$CACHE_KEY" "$REL" 2>&1 < /dev/null 9>&-) || fail cache "$c_out"
    mark cache building "$c_key"
    # The steps, one a line (no here-document: the host gets this file without its comment
    # lines, see src/remote/shipped.rs).
    c_nl=$(printf '\n.')
    c_nl=${c_nl%.}
    c_rest=$CACHE_STEPS$c_nl
    while [ -n "$c_rest" ]; do
      STEP=${c_rest%%"$c_nl"*}
      c_rest=${c_rest#*"$c_nl"}
      [ -n "$STEP" ] || continue
      mark step "$STEP"
      out=$(cd "$C" && run_step 2>&1) || {
        as_app rm -rf -- "$C" < /dev/null 9>&-
        build_failed "build step \`$STEP\`" "$out"
      }
    done < /dev/null
    as_app touch -- "$C/.complete" < /dev/null 9>&- || fail cache "cannot mark $C complete"
  fi
  rm -rf -- "${REL:?}/$CACHE_DIR"
  ln -s -- "$C/$CACHE_DIR" "$REL/$CACHE_DIR" || fail cache "cannot link $CACHE_DIR"
}

# cache_prune: remove every environment no release links to any more.
cache_prune() {
  for c in "$ROOT/shared/cache"/*; do
    [ -d "$c" ] || continue
    used=0
    for r in "$ROOT/releases"/*; do
      [ "$(readlink -- "$r/$CACHE_DIR" 2> /dev/null)" = "$c/$CACHE_DIR" ] && used=1 && break
    done
    [ "$used" = 1 ] || rm -rf -- "$c"
  done
}
