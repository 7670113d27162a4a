#!/bin/sh
# indexer-map.sh - inverted index mapper for Hadoop Streaming: one
# "word<TAB>document" line per distinct word; the document is the task's
# input file, from the environment ($map_input_file).
LC_ALL=C tr -cs 'A-Za-z' '\n' |
awk -v doc="$map_input_file" 'length($0) > 0 && !seen[$0]++ { print $0 "\t" doc }'
