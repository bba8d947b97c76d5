# Fetches an apt repository's signing key on the host and installs it only if EVERY key in the
# downloaded file is pinned: a file holding the vendor's key plus any other key is refused and
# nothing is installed. Run as one step of the apply script, in its own bounded `sh -c`.
# The key is staged in the keyring's own folder (a hidden name apt never reads, this run's
# pid in it), fsynced and renamed over the keyring: apt sees the old keyring or the new one,
# never a half-written or missing one, and a killed run leaves at most the stage, not the key.
#
# Set by the caller (src/role/apt_key.rs), quoted: `url`, `fingerprints` (the pinned primary
# key fingerprints, upper-case hex, space-separated) and `keyring` (the path to install to).
# shellcheck disable=SC2154
set -eu
command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get -q -y install curl
command -v gpg >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get -q -y install gnupg
work=$(mktemp -d)
dir=${keyring%/*}
staged=${dir:-/}/.${keyring##*/}.microctl.$$
trap 'rm -rf -- "$work" "$staged"' EXIT
curl -fsSL --retry 2 --max-time 120 -o "$work/key" "$url"
# A throwaway keyring home: nothing is imported, and root's ~/.gnupg is left alone.
GNUPGHOME="$work/gnupg"
export GNUPGHOME
mkdir -m 0700 "$GNUPGHOME"
if ! gpg --batch --no-tty --show-keys --with-colons "$work/key" >"$work/listing" 2>"$work/gpg.err"; then
    echo "the key file from $url is not an OpenPGP key: $(head -c 300 "$work/gpg.err"); nothing installed" >&2
    exit 1
fi
# One line per primary key (pub, or sec for a secret key): the fpr record that follows it.
awk -F: '$1 == "pub" || $1 == "sec" { keys++; want = 1; next }
    $1 == "fpr" && want { print $10; want = 0; seen++ }
    END { if (keys == 0 || seen != keys) exit 1 }' "$work/listing" >"$work/fingerprints" || {
    echo "the key file from $url holds no key, or a key without a fingerprint; nothing installed" >&2
    exit 1
}
while read -r got; do
    case " $fingerprints " in
    *" $got "*) ;;
    *)
        echo "the key file from $url holds key $got, which is not pinned (pinned: $fingerprints); nothing installed" >&2
        exit 1
        ;;
    esac
done <"$work/fingerprints"
mkdir -p -- "${dir:-/}"
install -m 0644 "$work/key" "$staged"
sync -- "$staged"
mv -fT -- "$staged" "$keyring"
