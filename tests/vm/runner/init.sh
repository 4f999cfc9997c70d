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
debug=$(cat /etc/vmtest/debug 2>/dev/null)
mark() { echo "@@@ $*" >&3; }

# Debug kernels (runner -debug): kmemleak is scanned before the tests, and
# what boot left behind is cleared, so that the closing check reports only
# what leaked since.
kmemleak=/sys/kernel/debug/kmemleak
if [[ $debug == true && -w $kmemleak ]]; then
	echo scan >$kmemleak
	echo "insane-vm: kmemleak: $(grep -c '^unreferenced object' $kmemleak) suspects from boot, cleared" >/dev/kmsg
	echo clear >$kmemleak
fi

# The runner's -debug report splits the kernel log at this line: what comes
# before it happened with no test run and no module loaded.
echo "insane-vm: user space begins" >/dev/kmsg

# kmemleak_check is the debug run's closing check, framed like a test: two
# scans a few seconds apart (kmemleak reports only objects older than 5 s
# that no scan found a reference to), then any suspect fails it.
kmemleak_check() {
	local start=$EPOCHREALTIME rc=0 n
	echo "=== RUN   kmemleak" >&3
	if [[ ! -r $kmemleak ]]; then
		echo "    $kmemleak is missing: no CONFIG_DEBUG_KMEMLEAK, or debugfs is not mounted" >&3
		rc=1
	else
		echo scan >$kmemleak
		sleep 6
		echo scan >$kmemleak
		n=$(grep -c '^unreferenced object' $kmemleak)
		echo "    kmemleak: $n suspected leaks" >&3
		if ((n > 0)); then
			cat $kmemleak >&3
			rc=1
		fi
	fi
	local elapsed
	elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	if ((rc == 0)); then
		echo "--- PASS: kmemleak (${elapsed}s)" >&3
	else
		echo "--- FAIL: kmemleak (${elapsed}s)" >&3
	fi
}

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
	[[ $debug == true ]] && kmemleak_check
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
