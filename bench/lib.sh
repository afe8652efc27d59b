# Helpers shared by the bench/*.sh harnesses (sourced, not run).
# free_port: a free TCP port on loopback. ready URL: waits (up to 20 s) for URL to answer 2xx.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() { for _ in $(seq 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
