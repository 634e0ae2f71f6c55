#!/bin/sh
echo "run-me says: $(cat /hello.txt)"
ls /app /app/sub /app/sub2/deeper /opt/dest
