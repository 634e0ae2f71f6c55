# Modes git cannot store, and a file capability (needs setcap, package libcap2-bin).
chmod 4755 tool-suid
chmod 2755 tool-sgid
chmod 1777 sticky-dir
chmod 2775 sgid-dir
setcap cap_net_bind_service=+ep tool-cap
