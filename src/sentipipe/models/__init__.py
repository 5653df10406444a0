"""The recurrent cells both tasks build their networks from."""
