package faulty

import "time"

// timeAfter is time.After; a variable so tests need no real waits.
var timeAfter = time.After
