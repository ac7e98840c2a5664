#!/bin/sh
# A poold worker program in plain shell with jq: upper-cases strings.
#
#   [function upper]
#   kind = program
#   command = /usr/share/doc/poold/examples/programs/upper.sh
#
# The handshake names the function; then one jq, kept running, turns each
# request line (a chunk of items) into one reply line, a non-string item
# failing in its place. --unbuffered: each reply leaves at once.
printf '%s\n' '{"poold":1,"functions":[{"name":"upper","min_args":1,"max_args":1}]}'
exec jq -c --unbuffered '{results: [.args[] |
	if type == "string" then ascii_upcase
	else {error: {code: "type_error", message: "upper takes a string"}} end]}'
