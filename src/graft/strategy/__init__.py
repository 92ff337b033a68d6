"""How much to transfer: the plan each strategy stands for, and the advisor that picks one."""
