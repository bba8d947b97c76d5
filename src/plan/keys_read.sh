# shellcheck shell=sh
# Run by the probe AS THE USER (`runuser -u USER -- /bin/sh -c THIS sh HOME`, HOME from the
# user database: src/plan/users.rs): what the user's `~/.ssh/authorized_keys` holds. Running as
# the user, nothing here can be turned against root: a symlink the user planted leads only
# where the user can go already. Prints one state line (`home-missing`, `ssh-missing`,
# `ssh-link`, `ssh-other`, `keys-link` or `ok`); for `ok`, `find`'s line for `.ssh` and the
# file (type, owner id, mode), then `line TEXT` per line of the file (a regular file only:
# never a FIFO). The probe prefixes each line with its own tag and the user's name, so
# nothing printed here can pass for another record.
cd -- "$1" 2> /dev/null || {
  echo home-missing
  exit 0
}
if [ -L .ssh ]; then
  echo ssh-link
elif [ ! -e .ssh ]; then
  echo ssh-missing
elif [ ! -d .ssh ]; then
  echo ssh-other
elif [ -L .ssh/authorized_keys ]; then
  echo keys-link
else
  echo ok
  find .ssh .ssh/authorized_keys -maxdepth 0 -printf 'stat %y %U %m\n' 2> /dev/null
  if [ -f .ssh/authorized_keys ]; then
    while IFS= read -r l || [ -n "$l" ]; do
      printf 'line %s\n' "$l"
    done < .ssh/authorized_keys
  fi
fi
