#!/bin/sh
# Leaves a background child holding stdout open after the script exits.
sleep 30 &
echo done
