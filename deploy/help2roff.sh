#!/usr/bin/env bash
# Writes a man page from a program's --help output, so the page cannot drift from it.
# usage: deploy/help2roff.sh PROGRAM NAME "ONE-LINE SUMMARY" VERSION > NAME.1
# The help text goes in as one preformatted block (it is already laid out for a terminal).
set -euo pipefail
program=$1 name=$2 summary=$3 version=$4
help=$("$program" --help)
upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
echo ".TH $upper 1 \"\" \"$name $version\" \"User Commands\""
echo ".SH NAME"
echo "$name \\- $summary"
echo ".SH DESCRIPTION"
echo ".nf"
# roff: a backslash is \e; a line starting with . or ' would be a request.
printf '%s\n' "$help" | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
echo ".fi"
echo ".SH SEE ALSO"
echo "posrelay(1), posrelay-terminal(1); /usr/share/doc/posrelay/README.md"
