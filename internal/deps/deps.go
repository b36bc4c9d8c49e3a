package deps
import (
 _ "modernc.org/sqlite"
 _ "github.com/go-crypt/crypt/algorithm/shacrypt"
 _ "golang.org/x/crypto/ssh"
)
