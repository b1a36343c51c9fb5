#!/usr/bin/env bash
# Whole-system benchmark of browsing interests and personas (issue 8,
# goal on/off >= 0.95): events.sh's interests scenario; see there.
#
#   bash bench/interests.sh
exec bash "$(dirname "${BASH_SOURCE[0]}")/events.sh" interests
