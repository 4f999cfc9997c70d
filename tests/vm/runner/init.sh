#!/bin/bash
# Guest init for the insane VM tests, run by the kernel as /init from the
# initramfs built by tests/vm/runner. The console is ttyS0 (stdout and
# stderr here). ttyS1 is the results port: markers ("@@@ ..."), the test
# events of the scripts and the kmemleak check (JSON lines, go doc
# cmd/test2json, written by eventrun), the kernel log, and the output of an
# exec mode command. ttyS2 is the test port: the guest test binary's output,
# exactly as it printed it with -test.v=test2json.
#
# /etc/vmtest holds the host's settings: mode (test, shell or exec), run (the
# test regexp), cmd (the exec mode command line), timeout, debug, gotest
# (true when the runner is go test's -exec program; then only the test binary
# runs) and args (then the binary's arguments as go test gave them, one a
# line).

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
stty -F /dev/ttyS2 raw -echo 2>/dev/null
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

# kmemleak_check is the debug run's closing check, run as a test named
# kmemleak through eventrun: two scans a few seconds apart (kmemleak reports
# only objects older than 5 s that no scan found a reference to), then any
# suspect fails it.
kmemleak_check() {
	if [[ ! -r $kmemleak ]]; then
		echo "    $kmemleak is missing: no CONFIG_DEBUG_KMEMLEAK, or debugfs is not mounted"
		return 1
	fi
	echo scan >$kmemleak
	sleep 6
	echo scan >$kmemleak
	local n
	n=$(grep -c '^unreferenced object' $kmemleak)
	echo "    kmemleak: $n suspected leaks"
	if ((n > 0)); then
		cat $kmemleak
		return 1
	fi
}
export -f kmemleak_check
export kmemleak

eventrun=/usr/libexec/insane/eventrun

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
	if [[ $(</etc/vmtest/gotest) == true ]]; then
		# go test -exec: its flags, and nothing else runs but the
		# closing kmemleak check of a debug run.
		args=()
		[[ -n $(</etc/vmtest/args) ]] && mapfile -t args </etc/vmtest/args
		scripts=false
	else
		args=(-test.v=test2json -test.timeout="$(</etc/vmtest/timeout)")
		[[ -n $run ]] && args+=(-test.run="$run")
		scripts=true
	fi
	# The binary is the only process with the test port open, so its exit
	# is the port's last close, which waits until its output has gone out:
	# the host has all of it when it reads the exit marker.
	/usr/libexec/insane/guest.test "${args[@]}" >/dev/ttyS2 2>&1
	mark exit guest.test $?
	for script in /usr/libexec/insane/scripts/*.sh; do
		[[ $scripts == true && -e $script ]] || continue
		name=script/${script##*/}
		if [[ -n $run ]] && ! [[ $name =~ $run ]]; then
			continue
		fi
		$eventrun -p github.com/insane-netdev/insane/tests/vm/scripts -name "$name" -- bash "$script" >&3
	done
	if [[ $debug == true ]]; then
		$eventrun -p github.com/insane-netdev/insane/tests/vm/runner -name kmemleak -- bash -c kmemleak_check >&3
	fi
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
