/* no_symbol.c - a shared object without poold_module: poold must refuse it */
int not_a_poold_module(int x);

int not_a_poold_module(int x)
{
	return x + 1;
}
