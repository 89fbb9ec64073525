#!/bin/sh
# The ABI surface three ways must agree:
#   - the dynamic symbols libcnn.so.1 defines (nm -D --defined-only),
#   - the global names of lib/libcnn.map, each versioned with its node,
#   - the functions include/cnn.h declares CNN_API.
#   exported_symbols.sh LIBRARY MAP HEADER
# Environment: NM (default nm), PERL (default perl).
set -eu

lib=$1
map=$2
header=$3
nm=${NM:-nm}
perl=${PERL:-perl}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
fail() {
    echo "exported_symbols: FAIL: $*" >&2
    status=1
}

# Map: "name node" for every global name, "node" lines into nodes.
# shellcheck disable=SC2016 # perl code, not shell
"$perl" -0777 -ne '
    s{/\*.*?\*/}{ }gs; s{#[^\n]*}{}g;
    while (/([A-Za-z_][\w.]*)\s*\{(.*?)\}\s*[\w.]*\s*;/gs) {
        my ($node, $body, $scope) = ($1, $2, "");
        print STDERR "NODE $node\n";
        for my $item (split /;/, $body) {
            $scope = $1 while $item =~ s/\b(global|local)\s*://;
            $item =~ s/^\s+|\s+$//g;
            next if $item eq "" or $scope ne "global";
            die "pattern \"$item\" in node $node: list exported names one by one\n"
                if $item =~ /[*?\[]/;
            print "$item $node\n";
        }
    }' "$map" >"$tmp/map-pairs" 2>"$tmp/map-nodes.raw" ||
    { cat "$tmp/map-nodes.raw" >&2; exit 1; }
sed -n 's/^NODE //p' "$tmp/map-nodes.raw" | sort >"$tmp/map-nodes"
sort "$tmp/map-pairs" >"$tmp/map-expected"
cut -d' ' -f1 "$tmp/map-pairs" | sort >"$tmp/map-names"
[ -s "$tmp/map-nodes" ] || fail "no version node found in $map"
[ -s "$tmp/map-names" ] || fail "no global name found in $map"
dups=$(uniq -d "$tmp/map-names")
[ -z "$dups" ] || fail "names listed twice in the map: $dups"

# Library: "name version" for functions and data, bare names for absolute ones.
"$nm" -D --defined-only "$lib" >"$tmp/nm"
grep -q '@' "$tmp/nm" || fail "$nm shows no symbol versions for $lib (unversioned library?)"
awk 'NF == 3 && $2 == "A" { sub(/@.*/, "", $3); print $3 }' "$tmp/nm" | sort >"$tmp/lib-nodes"
awk 'NF == 3 && $2 != "A"' "$tmp/nm" >"$tmp/lib-other"
while read -r _ type symbol; do
    case $symbol in
    *@@*) echo "${symbol%%@@*} ${symbol#*@@}" ;;
    *@*) fail "$symbol ($type) is exported only as a non-default version" ;;
    *) fail "$symbol ($type) is exported without a version" ;;
    esac
done <"$tmp/lib-other" >"$tmp/lib-pairs"
sort "$tmp/lib-pairs" >"$tmp/lib-exported"
if ! cmp -s "$tmp/map-nodes" "$tmp/lib-nodes"; then
    fail "version nodes differ (< only in the map, > only in the library):"
    diff "$tmp/map-nodes" "$tmp/lib-nodes" | grep '^[<>]' >&2 || true
fi
if ! cmp -s "$tmp/map-expected" "$tmp/lib-exported"; then
    fail "exported 'symbol node' pairs differ (< only in the map, > only in the library):"
    diff "$tmp/map-expected" "$tmp/lib-exported" | grep '^[<>]' >&2 || true
fi

# Header: names of the functions declared CNN_API.
# shellcheck disable=SC2016 # perl code, not shell
"$perl" -0777 -ne '
    s{/\*.*?\*/}{ }gs; s{//[^\n]*}{}g; s{\\\n}{ }g; s{^[ \t]*#[^\n]*}{}mg;
    for my $decl (split /[;{}]/) {
        next unless $decl =~ /\bCNN_API\b/;
        $decl =~ /\b(\w+)\s*\(/ or die "no function name in: $decl\n";
        print "$1\n";
    }' "$header" | sort >"$tmp/header-names"
[ -s "$tmp/header-names" ] || fail "no CNN_API declaration found in $header"
if ! cmp -s "$tmp/header-names" "$tmp/map-names"; then
    fail "CNN_API functions of the header and names of the map differ (< header only, > map only):"
    diff "$tmp/header-names" "$tmp/map-names" | grep '^[<>]' >&2 || true
fi

[ "$status" -eq 0 ] && echo "exported_symbols: $(wc -l <"$tmp/lib-exported") symbols in $(wc -l <"$tmp/lib-nodes") node(s), map and header agree"
exit "$status"
