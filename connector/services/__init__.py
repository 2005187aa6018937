"""Use cases: load rows, ask the domain, save the result and queue the messages we owe, in one unit of work.

Services never commit; the caller's unit of work does (see connector.persistence.database.Database).
"""
