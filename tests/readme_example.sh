#!/bin/sh
# Compiles and runs the C block that follows "<!-- readme-example -->" in README.md
# against the freshly built library, so the README's example cannot rot.
#   readme_example.sh SOURCE-ROOT LIBRARY-DIR SCRATCH-DIR
set -eu
src=$1 libdir=$2 scratch=$3
mkdir -p "$scratch"
awk '/<!-- readme-example -->/ { marked = 1; next }
     marked && /^```c$/ { inside = 1; next }
     inside && /^```$/ { exit }
     inside { print }' "$src/README.md" > "$scratch/example.c"
if [ ! -s "$scratch/example.c" ]; then
    echo "README.md has no C block after <!-- readme-example -->" >&2
    exit 1
fi
${CC:-cc} -std=c11 -Wall -Wextra -Werror -I"$src/include" "$scratch/example.c" \
    -L"$libdir" -lcnn -o "$scratch/example"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$scratch/example" > "$scratch/output.txt"
cat "$scratch/output.txt"
# The comment in the example promises the notes' 28x28x16.
grep -qx "conv output: 28x28x16" "$scratch/output.txt"
grep -q "^p(class 0 | image 0) = 0\.[0-9]*$" "$scratch/output.txt"
