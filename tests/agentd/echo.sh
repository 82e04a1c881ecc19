#!/bin/sh
# A stdio agent in plain shell: answers every request with its id and the
# task type, echoed back as the payload.
while IFS= read -r line; do
	id=$(printf '%s\n' "$line" | sed -n 's/^{"id":\([0-9]*\),.*/\1/p')
	type=$(printf '%s\n' "$line" | sed -n 's/.*"type":"\([^"]*\)".*/\1/p')
	printf '{"id":%s,"status":"ok","quality":7.5,"payload":"shell:%s"}\n' "$id" "$type"
done
