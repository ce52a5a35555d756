"""trackpulse.server"""
