#!/bin/sh
# wc-map.sh - word count mapper for Hadoop Streaming (and raftkv-mr -m):
# one "word<TAB>1" line per maximal run of ASCII letters on stdin.
LC_ALL=C tr -cs 'A-Za-z' '\n' | awk 'length($0) > 0 { print $0 "\t1" }'
