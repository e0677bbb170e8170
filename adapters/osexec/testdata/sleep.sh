#!/bin/sh
# Sleeps long enough for a test to cancel it.
sleep 30
