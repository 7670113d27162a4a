#!/bin/sh
# wc-reduce.sh - word count reducer for Hadoop Streaming: input sorted by
# key, "word<TAB>n" lines; prints "word<TAB>sum" per word.
exec awk -F '\t' '
$1 != key { if (seen) print key "\t" sum; key = $1; sum = 0; seen = 1 }
{ sum += $2 }
END { if (seen) print key "\t" sum }'
