// Waiting for the signal that stops a server process.
#pragma once

namespace posrelay {

// Blocks until SIGINT or SIGTERM arrives, logs "shutting down" with it, and returns it.
int wait_for_stop_signal();

}  // namespace posrelay
