# Runs as PID 1 of a test host's fresh mount and PID namespaces (see host.rs), then becomes its sshd.
# $1: the host's temporary directory (keys; overlay upper and work directories), $2: the login user.
set -eu
dir=$1 user=$2

# /etc and /var: the machine's files, with the host's changes kept in its own directory.
for tree in etc var; do
  mkdir -p "$dir/$tree-upper" "$dir/$tree-work"
  mount -t overlay "osc-$tree" -o "lowerdir=/$tree,upperdir=$dir/$tree-upper,workdir=$dir/$tree-work" "/$tree"
done
# /dev: the devices a shell and sshd need, and room of its own for sockets such as syslog's /dev/log.
mkdir "$dir/dev"
mount -t tmpfs -o mode=0755 osc-dev "$dir/dev"
for node in null zero full random urandom tty; do
  touch "$dir/dev/$node"
  mount --bind "/dev/$node" "$dir/dev/$node"
done
# The machine's disks, which are the host's too (read by lsblk and findmnt, never written by a test).
for node in /dev/*; do
  if [ -b "$node" ]; then
    touch "$dir$node"
    mount --bind "$node" "$dir$node"
  fi
done
if [ -d /dev/mapper ]; then
  mkdir "$dir/dev/mapper"
  mount --rbind /dev/mapper "$dir/dev/mapper"
fi
mkdir "$dir/dev/pts" "$dir/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 osc-devpts "$dir/dev/pts"
mount -t tmpfs -o mode=1777 osc-shm "$dir/dev/shm"
ln -s pts/ptmx "$dir/dev/ptmx"
ln -s /proc/self/fd "$dir/dev/fd"
ln -s /proc/self/fd/0 "$dir/dev/stdin"
ln -s /proc/self/fd/1 "$dir/dev/stdout"
ln -s /proc/self/fd/2 "$dir/dev/stderr"
mount --move "$dir/dev" /dev

mount -t tmpfs -o mode=0755 osc-run /run
mkdir -m 0755 /run/sshd /run/osc-test-host
cp "$dir/host_key" "$dir/client_key.pub" /run/osc-test-host/
mv /run/osc-test-host/client_key.pub /run/osc-test-host/authorized_keys
chmod 0644 /run/osc-test-host/authorized_keys
# /tmp last: the host's directory lives under the machine's /tmp, which this hides.
mount -t tmpfs -o mode=1777 osc-tmp /tmp

# The appliance's login: a passwordless sudoer with a key ("*" is no password, not a locked account).
useradd --system --no-create-home --home-dir / --shell /bin/sh "$user"
usermod -p '*' "$user"
printf '%s ALL=(root) NOPASSWD: ALL\n' "$user" >"/etc/sudoers.d/osc-test-host"
chmod 0440 /etc/sudoers.d/osc-test-host

exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config -o Port=22 \
  -o HostKey=/run/osc-test-host/host_key \
  -o AuthorizedKeysFile=/run/osc-test-host/authorized_keys \
  -o PidFile=/run/sshd.pid
