#!/bin/bash
# Builds (once) the 6.1 debug kernel that make test-debug boots: Debian's
# linux-source-6.1 with x86_64_defconfig + kvm_guest.config + config.fragment.
#
#   tests/vm/debugkernel/build.sh        build if needed; print the tree's path
#
# The tree is cached outside the repository, in
# $INSANE_DEBUG_KERNEL_CACHE/<key> (default /var/cache/insane/debug-kernel),
# where <key> hashes config.fragment and the source package's version. It
# holds the built source tree (bzImage, .config, Module.symvers: what an
# external module build needs), modroot/lib/modules/<release> (from
# modules_install, for the VM runner's -moddir) and, written last, the stamp
# file "built" with the kernel release. A tree without the stamp is an
# unfinished build: running again resumes it (make is incremental).
#
# The only output on stdout is the tree's path; progress goes to stderr and
# the build's own output to <key>/build.log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/config.fragment
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
cache=${INSANE_DEBUG_KERNEL_CACHE:-/var/cache/insane/debug-kernel}
jobs=${JOBS:-$(nproc)}

die() { echo "debugkernel: $*" >&2; exit 1; }
log() { echo "debugkernel: $*" >&2; }

[[ -r $tarball ]] || die "$tarball not found: apt-get install linux-source-6.1 (make deps)"
# The package's version names the source (Debian patches included); a
# tarball that no package owns is keyed by its checksum instead.
version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)
[[ -n $version ]] || version=sha256:$(sha256sum <"$tarball" | cut -d' ' -f1)
key=$( { echo "linux-source-6.1 $version"; cat "$fragment"; } | sha256sum | cut -c1-16)
dir=$cache/$key
tree=$dir/linux-source-6.1

if [[ -f $dir/built ]]; then
	log "cached: $tree ($(<"$dir/built"))"
	echo "$tree"
	exit 0
fi

mkdir -p "$dir"
# One build per key at a time; a second caller waits and then finds the stamp.
exec 9>"$dir/.lock"
if ! flock -n 9; then
	log "waiting for another build of $dir"
	flock 9
fi
if [[ -f $dir/built ]]; then
	echo "$tree"
	exit 0
fi

start=$SECONDS
buildlog=$dir/build.log
log "building in $dir (linux-source-6.1 $version, -j$jobs); log: $buildlog"
{ echo "key $key: linux-source-6.1 $version"; date -u; } >>"$buildlog"

if [[ ! -f $tree/Makefile ]]; then
	log "extracting $tarball"
	rm -rf "$tree"
	tar -C "$dir" -xf "$tarball"
fi

cd "$tree"
if [[ ! -f .config.done ]] || ! cmp -s .config.done "$fragment"; then
	log "configuring"
	make x86_64_defconfig kvm_guest.config >>"$buildlog" 2>&1
	cat "$fragment" >>.config
	make olddefconfig >>"$buildlog" 2>&1
	# Every option of the fragment must have survived olddefconfig (an
	# unmet dependency silently drops it).
	bad=0
	while IFS= read -r line; do
		if [[ $line =~ ^CONFIG_([A-Za-z0-9_]+)=(.*)$ ]]; then
			name=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
		elif [[ $line =~ ^#\ CONFIG_([A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			name=${BASH_REMATCH[1]} want=n
		else
			continue
		fi
		want=${want//\"/}
		got=$(scripts/config --state "$name")
		[[ $want == n && $got == undef ]] && got=n
		if [[ $got != "$want" ]]; then
			echo "debugkernel: CONFIG_$name is '$got' after olddefconfig, want '$want'" >&2
			bad=1
		fi
	done <"$fragment"
	((bad == 0)) || die "the configuration lacks options of $fragment (see above)"
	cp "$fragment" .config.done
fi

log "make -j$jobs bzImage modules (20-40 minutes on 2 cores)"
if ! make -j"$jobs" bzImage modules >>"$buildlog" 2>&1; then
	tail -n 30 "$buildlog" >&2
	die "kernel build failed; log: $buildlog"
fi
release=$(make -s kernelrelease)
rm -rf "$dir/modroot"
make -s INSTALL_MOD_PATH="$dir/modroot" INSTALL_MOD_STRIP=1 modules_install >>"$buildlog" 2>&1
for f in arch/x86/boot/bzImage Module.symvers "$dir/modroot/lib/modules/$release/modules.builtin"; do
	[[ -s $f ]] || die "$f missing after the build"
done
echo "$release" >"$dir/built"
log "built $release in $(((SECONDS - start) / 60)) min: $tree"
echo "$tree"
