#!/bin/sh
# replay.sh: replays the fuzz corpora through both fuzz targets, without
# libFuzzer, so every build (gcc, the sanitizers) checks them.  make check
# runs it from the top build directory; exits 0 if every input ran clean.
srcdir=${srcdir:-.}
builddir=${TOP_BUILDDIR:-.}
status=0

for t in codec ipc; do
	prog=$builddir/tests/fuzz/replay_$t
	case $t in
	codec)	corpus=$srcdir/tests/fuzz/corpus ;;
	ipc)	corpus=$srcdir/tests/fuzz/corpus-ipc ;;
	esac
	if [ ! -x "$prog" ]; then
		echo "replay.sh: $prog is not built" >&2
		exit 99
	fi
	echo "replay.sh: $prog $corpus"
	"$prog" "$corpus" || status=1
done
exit $status
