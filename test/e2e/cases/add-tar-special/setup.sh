# A tar with what only an archive can bring into ADD: foreign owners, setuid/setgid/
# sticky modes, hardlinks, a fifo, PAX long and non-ASCII names, and (when setcap is
# installed) a security.capability xattr.
mkdir -p p/bin p/sticky p/owned
long=p/$(printf 'long-directory-name-%02d/' 1 2 3 4 5 6)
mkdir -p "$long"
printf 'long\n' > "${long}a-file-with-a-long-name-that-needs-pax-records.txt"
printf 'suid\n' > p/bin/suid && chmod 4755 p/bin/suid
printf 'sgid\n' > p/bin/sgid && chmod 2711 p/bin/sgid
printf 'cap\n' > p/bin/cap && chmod 755 p/bin/cap
if command -v setcap >/dev/null; then setcap cap_net_raw+ep p/bin/cap; fi
chmod 1777 p/sticky
ln p/bin/suid p/bin/suid-hard
ln -s suid p/bin/suid-sym
ln -s "/$(printf 'target-%02d-with-a-long-name/' 1 2 3 4 5 6)end" p/long-symlink
mkfifo p/fifo
printf 'owned\n' > p/owned/file && chown -R 1234:5678 p/owned && chmod 640 p/owned/file
printf 'unicode\n' > 'p/héllo wörld-日本.txt'
tar --xattrs --xattrs-include='security.capability' --sort=name --mtime=@1600000000 --numeric-owner \
  --format=posix --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' -cf special.tar -C p .
rm -rf p
