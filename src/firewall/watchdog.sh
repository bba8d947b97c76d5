# shellcheck shell=sh
# The firewall's confirm watchdog: started detached (setsid, stdio on /dev/null, not holding
# the host lock) just before the new table goes live, with FW_STATE, FW_TOKEN and FW_TIMEOUT
# in its environment. Unless the decision (FW_STATE/firewall.decided.TOKEN, made by the
# controller's confirm over a new connection) exists within FW_TIMEOUT seconds, it makes the
# decision itself and restores the previous table (firewall.old, one `nft -f` transaction),
# then marks firewall.reverted.TOKEN. A controller that is killed, cut off by the new rules
# or stalled after the apply cannot leave an unconfirmed rule set live. It polls 5 times a
# second on the wall clock and starts only `sleep` and `date` while it waits.
trap '' HUP INT
fw_end=$(($(date +%s) + FW_TIMEOUT))
while [ "$(date +%s)" -lt "$fw_end" ]; do
  [ -d "$FW_STATE/firewall.decided.$FW_TOKEN" ] && exit 0
  sleep 0.2
done
mkdir -- "$FW_STATE/firewall.decided.$FW_TOKEN" 2> /dev/null || exit 0
nft -f "$FW_STATE/firewall.old"
mkdir -- "$FW_STATE/firewall.reverted.$FW_TOKEN"
