"""Tracker connectors: one package per tracker."""
