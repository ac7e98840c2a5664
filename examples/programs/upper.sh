#!/bin/sh
# A poold worker program in plain shell with jq: upper-cases strings.
#
#   [function upper]
#   kind = program
#   command = /usr/share/doc/poold/examples/programs/upper.sh
#
# The handshake names the function; then each request line (a chunk of items)
# gets one reply line, a non-string item failing in its place.
printf '%s\n' '{"poold":1,"functions":[{"name":"upper","min_args":1,"max_args":1}]}'
while IFS= read -r line; do
	printf '%s\n' "$line" | jq -c '{results: [.args[] |
		if type == "string" then ascii_upcase
		else {error: {code: "type_error", message: "upper takes a string"}} end]}'
done
