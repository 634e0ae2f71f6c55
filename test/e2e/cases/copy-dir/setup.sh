# git keeps neither empty directories nor modes other than 0644/0755.
mkdir tree/empty tree/nested/empty2
chmod 700 tree/private
chmod 600 tree/private/secret.txt
chmod 750 tree/nested/deeper
chmod 711 tree/nested/empty2
