#!/bin/sh
# Fails when a manifest under deploy/ mounts the rules volume with `subPath`
# (or `subPathExpr`). A subPath mount is a bind mount of one file: the kubelet
# never updates it, so edited rules would never reach the engine. The rules
# ConfigMap must be mounted as a directory.
#
# Usage: deploy/check-no-subpath.sh [DIR]   (default: the directory of this script)
# A volume mount counts as the rules volume when its `name` or `mountPath`
# matches $RULES_VOLUME_PATTERN (an extended regex, default "rules").
# Passes on an empty or partial deploy/.
set -eu

dir=${1:-$(dirname "$0")}
pattern=${RULES_VOLUME_PATTERN:-rules}
status=0

files=$(find "$dir" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.tpl' -o -name '*.json' \) 2>/dev/null | sort)
[ -n "$files" ] || exit 0

for f in $files; do
    # For every `subPath:` line, collect the list item it belongs to (from its
    # `- ` line to the next line indented no deeper than that dash) and report
    # it when the item names the rules volume.
    awk -v file="$f" -v pat="$pattern" '
        function indent(s) { match(s, /^ */); return RLENGTH }
        { line[NR] = $0 }
        END {
            bad = 0
            for (i = 1; i <= NR; i++) {
                if (line[i] !~ /^[ \t-]*"?subPath(Expr)?"?[ \t]*:/) continue
                sp = indent(line[i]); start = 0
                if (line[i] ~ /^ *- /) start = i
                else for (j = i - 1; j >= 1; j--)
                    if (line[j] ~ /^ *- / && indent(line[j]) < sp) { start = j; break }
                if (!start) continue
                di = indent(line[start])
                item = line[start]
                for (k = start + 1; k <= NR; k++) {
                    if (line[k] ~ /^ *(#.*)?$/) continue
                    if (indent(line[k]) <= di) break
                    item = item "\n" line[k]
                }
                if (item ~ ("(name|mountPath)\"?[ \t]*:[ \t]*\"?[^\n]*" pat)) {
                    printf "%s:%d: the rules volume is mounted with subPath; mount the ConfigMap as a directory (a subPath mount never receives updates)\n", file, i
                    bad = 1
                }
            }
            exit bad
        }
    ' "$f" || status=1
done
exit $status
