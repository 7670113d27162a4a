#!/bin/sh
# indexer-reduce.sh - inverted index reducer for Hadoop Streaming: input
# "word<TAB>document" sorted by word (raftkv-mr also sorts the documents of
# a word); prints "word<TAB>COUNT doc1,doc2,...".
exec awk -F '\t' '
$1 != key { if (n) print key "\t" n " " docs; key = $1; n = 0; docs = "" }
{ docs = n ? docs "," $2 : $2; n++ }
END { if (n) print key "\t" n " " docs }'
