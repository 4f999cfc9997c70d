#!/bin/bash
# Guest init for the insane VM tests, run by the kernel as /init from the
# initramfs built by tests/vm/runner. The console is ttyS0 (stdout and
# stderr here); results go to ttyS1 for the host to parse.
#
# /etc/vmtest holds the host's settings: mode (test, shell or exec), run (the
# test regexp), cmd (the exec mode command line) and verbose.

export PATH=/usr/sbin:/usr/bin HOME=/root TERM=linux LANG=C
umask 022

mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=000 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
mount -t tmpfs -o nosuid,nodev tmpfs /tmp
mount -t debugfs -o nosuid,nodev,noexec debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /run/netns /root
ln -sf /proc/self/fd /dev/fd
hostname insane-vm
ip link set lo up

stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3>/dev/ttyS1

mode=$(</etc/vmtest/mode)
run=$(</etc/vmtest/run)
mark() { echo "@@@ $*" >&3; }

finish() {
	mark dmesg-begin
	dmesg >&3
	mark dmesg-end
	mark done
	# The last close of the port waits until its output has gone out.
	exec 3>&-
	sync
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 10
}

mark begin
echo "insane-vm: kernel $(uname -r), mode $mode"

case "$mode" in
test)
	cd /tmp
	args=(-test.v -test.timeout="$(</etc/vmtest/timeout)")
	[[ -n $run ]] && args+=(-test.run="$run")
	/usr/libexec/insane/guest.test "${args[@]}" >&3 2>&3
	mark exit guest.test $?
	for script in /usr/libexec/insane/scripts/*.sh; do
		[[ -e $script ]] || continue
		name=script/${script##*/}
		if [[ -n $run ]] && ! [[ $name =~ $run ]]; then
			continue
		fi
		echo "=== RUN   $name" >&3
		start=$EPOCHREALTIME
		bash "$script" >&3 2>&3
		rc=$?
		elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
		if ((rc == 0)); then
			echo "--- PASS: $name (${elapsed}s)" >&3
		else
			echo "    exit status $rc" >&3
			echo "--- FAIL: $name (${elapsed}s)" >&3
		fi
	done
	;;
shell)
	modprobe insane 2>/dev/null && echo "insane-vm: module insane loaded"
	echo "insane-vm: exit the shell to power off"
	setsid -c bash -i </dev/ttyS0 >/dev/ttyS0 2>&1
	;;
exec)
	cd /tmp
	bash -c "$(</etc/vmtest/cmd)" >&3 2>&3
	mark exit guest-cmd $?
	;;
*)
	echo "insane-vm: unknown mode $mode"
	;;
esac
finish
