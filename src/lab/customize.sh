#!/usr/bin/env bash
# Runs once inside the base image (non-boot nspawn, host network): users, sshd, offline apt.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q libpam-systemd procps curl ca-certificates iputils-ping less python3 iproute2 python3-pip python3-venv
# Every package the lab's roles install, downloaded now so hosts install offline (certbot: nginx
# with tls = "acme"; pebble: the lab's ACME CA, run on monitoring by tests/lab.rs; nftables:
# the firewall).
apt-get install -y -q --download-only nginx prometheus prometheus-node-exporter git sqlite3 certbot pebble nftables
# The lab app's Python wheels (downloaded by lab.sh for this image's Python and copied in);
# pip is told to use only them, so hosts build venvs offline.
printf '[global]\nno-index = true\nfind-links = /var/cache/microctl/wheels\n' > /etc/pip.conf
useradd --create-home --shell /bin/bash --groups sudo ubuntu
usermod -p '*' ubuntu
echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-lab-ubuntu
chmod 0440 /etc/sudoers.d/90-lab-ubuntu
visudo -cq
mkdir -p /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/50-lab.conf <<CONF
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 50
AllowTcpForwarding yes
CONF
systemctl mask apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
  nvmf-autoconnect.service openipmi.service >/dev/null 2>&1
echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/90lab-unsafe-io
cat > /etc/apt/apt.conf.d/90lab-offline <<CONF
Acquire::Retries "0";
Acquire::http::Timeout "5";
APT::Keep-Downloaded-Packages "true";
Binary::apt::APT::Keep-Downloaded-Packages "true";
CONF
# Identity: every host makes its own.
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id
echo localhost > /etc/hostname
: > /etc/resolv.conf
echo LANG=C.UTF-8 > /etc/default/locale
date -u +%Y%m%dT%H%M%SZ > /etc/lab-base-id
