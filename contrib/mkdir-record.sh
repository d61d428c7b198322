#!/bin/sh
# mkdir-record.sh RECORD DIR...: "mkdir -p DIR...", noting in RECORD each
# absolute directory that did not exist before, so that "make uninstall"
# removes the directories "make install" created, and no others.  The
# Makefile uses it as $(MKDIR_P); relative directories (the build's own)
# are made but not noted.
set -e
rec=$1
shift
for d in "$@"; do
	case $d in
	-*) continue ;;
	/*) ;;
	*) mkdir -p -- "$d"; continue ;;
	esac
	new=""
	p=$d
	while [ -n "$p" ] && [ "$p" != / ] && [ ! -d "$p" ]; do
		new="$new
$p"
		p=$(dirname -- "$p")
	done
	mkdir -p -- "$d"
	if [ -n "$new" ]; then
		printf '%s\n' "$new" | sed '/^$/d' >>"$rec"
	fi
done
