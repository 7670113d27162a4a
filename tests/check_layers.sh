#!/bin/sh
# tests/check_layers.sh - fail when a file includes a header of a layer it
# must not depend on.
#
# The layers stack one way (Makefile.am): util -> core -> storage, net,
# client -> member -> kv -> fs, mr.  For each source and header below, every
# #include "..." must name a file of its own layer or of one it may use.
# The KV state machine (kv/libkv.a) is Raft-free; the clerk, the lock and
# the CLI use the client layer only, never the member runtime.
set -u
top=${RAFTKV_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 99

# allowed FILE: the include prefixes FILE may use (its own layer first).
allowed() {
	case $1 in
	raft/util/*)	echo "raft/util/" ;;
	raft/poison/*)	echo "" ;;
	raft/storage/*)	echo "raft/storage/ raft/util/ raft/CORE" ;;
	raft/net/*)	echo "raft/net/ raft/util/ raft/CORE" ;;
	raft/client/*)	echo "raft/client/ raft/util/ raft/CORE" ;;
	raft/member/*)	echo "raft/member/ raft/storage/ raft/net/ raft/client/ raft/util/ raft/CORE" ;;
	raft/*)		echo "raft/CORE" ;;
	kv/kv.[ch]|kv/keyspace.[ch]|kv/session.[ch]|kv/cmd.[ch]|kv/kvsnap.[ch]|kv/kvexec.[ch]|kv/locktab.[ch]|kv/kvlock.[ch]|kv/opentab.[ch])
			echo "kv/kv.h kv/keyspace.h kv/session.h kv/cmd.h kv/kvsnap.h kv/kvexec.h kv/locktab.h kv/kvlock.h kv/opentab.h raft/util/ raft/CORE" ;;
	kv/kvapp.[ch]|kv/server_main.c)
			echo "kv/ raft/member/ raft/client/ raft/util/ raft/CORE" ;;
	kv/*)		echo "kv/ raft/client/ raft/util/ raft/CORE" ;;
	fs/*)		echo "fs/ kv/ raft/member/ raft/client/ raft/storage/ raft/util/ raft/CORE" ;;
	mr/*)		echo "mr/ kv/ raft/client/ raft/util/ raft/CORE" ;;
	*)		echo "ANY" ;;
	esac
}

bad=0
files=$(find raft kv fs mr -name '*.[ch]' 2>/dev/null | sort)
for f in $files; do
	ok=$(allowed "$f")
	[ "$ok" = ANY ] && continue
	for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
		pass=0
		for p in $ok; do
			case $p in
			raft/CORE)
				# a core header: raft/X.h directly under raft/
				case $inc in raft/*/*) ;; raft/*) pass=1 ;; esac ;;
			*/)	case $inc in "$p"*) pass=1 ;; esac ;;
			*)	[ "$inc" = "$p" ] && pass=1 ;;
			esac
			[ $pass = 1 ] && break
		done
		if [ $pass = 0 ]; then
			echo "check_layers: $f includes \"$inc\", a layer it must not use" >&2
			bad=1
		fi
	done
	# The pure core: only the C library's headers besides its own.
	case $f in raft/*/*) ;; raft/*)
		for sys in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<\([^>]*\)>.*/\1/p' "$f"); do
			case $sys in
			zmq.h|zstd.h|fuse*|sys/socket.h|pthread.h|netinet/*|sys/epoll.h)
				echo "check_layers: core file $f includes <$sys> (the core does no I/O)" >&2
				bad=1 ;;
			esac
		done ;;
	esac
done
[ $bad = 0 ] && echo "check_layers: $(echo "$files" | wc -w) files, layering holds"
exit $bad
