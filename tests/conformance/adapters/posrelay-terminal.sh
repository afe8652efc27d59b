#!/bin/sh
# Conformance adapter for posrelay's own posrelay-terminal: `listen` prints every event frame
# on stdout and keeps its position in a state file. It takes no requests on that connection
# (requests are separate invocations), so request cases are n/a.
exec "${POSRELAY_TERMINAL_BIN:?set POSRELAY_TERMINAL_BIN to the posrelay-terminal binary}" listen \
  --connect "$POSRELAY_HOSTPORT" --terminal "$POSRELAY_TERMINAL_ID" --store "$POSRELAY_STORE_ID" \
  --state-file "$POSRELAY_STATE_DIR/state" --log-level warn
