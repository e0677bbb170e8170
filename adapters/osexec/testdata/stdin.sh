#!/bin/sh
# Copies stdin to stdout.
cat
