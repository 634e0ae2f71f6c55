#!/bin/sh
echo "greet: $MSG from $APP_HOME ($QUOTED) [$SINGLE] [$ESC] [$EMPTY]"
cat /arg-out.txt /env-out.txt
