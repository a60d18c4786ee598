"""The connection dashboard: settings, rules, mappings and preview of one connection."""
