"""Subnet-owner tools: profile expert routing, choose expert groups, create the initial model."""
