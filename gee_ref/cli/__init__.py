"""(layer docstring to come)"""
