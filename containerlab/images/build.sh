#!/bin/sh
# Builds the images stitch.clab.yml names (needs a Docker engine), then:
#   containerlab deploy -t containerlab/stitch.clab.yml
set -eu
cd "$(dirname "$0")/../.."
for img in ovs frr host torstitch; do
	docker build -t "torstitch/$img:latest" -f "containerlab/images/$img/Dockerfile" .
done
