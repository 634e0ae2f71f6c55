# git cannot store hardlinks.
ln tree/file.txt tree/hard.txt
ln tree/file.txt tree/sub/hard2.txt
