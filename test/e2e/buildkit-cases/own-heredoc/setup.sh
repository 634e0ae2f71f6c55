chmod 0664 greeting
