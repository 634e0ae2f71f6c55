# Archives are made here (reproducibly) rather than kept as binaries in git.
chmod 750 payload/dir
tar --sort=name --mtime=@1600000000 --owner=1234 --group=5678 --numeric-owner --format=gnu -cf archive.tar -C payload .
tar --sort=name --mtime=@1600000000 --numeric-owner --format=ustar -cf parts.tar -C payload a.txt dir
gzip -n -9 -c archive.tar > archive.tar.gz
printf 'not a tarball, just gzip\n' | gzip -n -9 > notes.txt.gz
rm -rf payload
