# shellcheck shell=sh
# The firewall step on the host, after the session part (STATE is the locked state folder).
# FW_ACTION says which of three sessions this is, FW_TOKEN (hex) names this change's marks:
#   apply: check FW_RULES (the whole table) with `nft -c`, save the live table, start the
#     watchdog (FW_WATCHDOG_SH, detached, without the lock), then replace the table in one
#     `nft -f` transaction (`table`, `delete table`, the new table) and say `fw-applied`.
#   confirm: run by the controller over a NEW connection: take the decision (mkdir) before the
#     watchdog does: `fw-confirmed`, or `fw-late` when the watchdog decided first.
#   wait: over the old connection after a confirm failed: wait for the watchdog's restore
#     (`fw-reverted`), or say `fw-unknown` after FW_TIMEOUT and a margin.
# Whoever creates firewall.decided.TOKEN decides; nothing but the table and these marks and
# the two rule files in the state folder is touched.
fw_new=$STATE/firewall.new
fw_old=$STATE/firewall.old
fw_decided=$STATE/firewall.decided.$FW_TOKEN
fw_reverted=$STATE/firewall.reverted.$FW_TOKEN
case $FW_ACTION in
  apply)
    command -v nft > /dev/null 2>&1 || { echo fw-no-nft; exit 3; }
    for fw_d in "$STATE"/firewall.decided.* "$STATE"/firewall.reverted.*; do
      if [ -d "$fw_d" ] && [ ! -L "$fw_d" ]; then rmdir -- "$fw_d"; fi
    done
    rm -f -- "$fw_new" "$fw_old"
    printf 'table inet microctl\ndelete table inet microctl\n%s' "$FW_RULES" > "$fw_new"
    if ! fw_err=$(nft -c -f "$fw_new" 2>&1); then
      printf 'fw-invalid\t%s\n' "$fw_err" | tr '\n' ' '
      echo
      exit 4
    fi
    printf 'table inet microctl\ndelete table inet microctl\n' > "$fw_old"
    nft list table inet microctl >> "$fw_old" 2> /dev/null || :
    FW_STATE=$STATE FW_TOKEN=$FW_TOKEN FW_TIMEOUT=$FW_TIMEOUT setsid sh -c "$FW_WATCHDOG_SH" microctl-firewall-confirm < /dev/null > /dev/null 2>&1 9>&- &
    if ! fw_err=$(nft -f "$fw_new" 2>&1); then
      mkdir -- "$fw_decided"
      printf 'fw-failed\t%s\n' "$fw_err" | tr '\n' ' '
      echo
      exit 5
    fi
    echo fw-applied
    ;;
  confirm)
    if mkdir -- "$fw_decided" 2> /dev/null; then echo fw-confirmed; else echo fw-late; fi
    ;;
  wait)
    fw_end=$(($(date +%s) + FW_TIMEOUT + 5))
    while [ "$(date +%s)" -le "$fw_end" ]; do
      if [ -d "$fw_reverted" ]; then
        echo fw-reverted
        exit 0
      fi
      sleep 0.2
    done
    echo fw-unknown
    ;;
esac
