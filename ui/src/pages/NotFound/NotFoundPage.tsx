import { EmptyState } from "../../components/States";
import { Link, useTitle } from "../../router";

export function NotFoundPage() {
  useTitle("Not found");
  return (
    <EmptyState icon="info" title="There is no page here" action={<Link to="/keys" className="btn btn-primary">Go to API keys</Link>}>
      The address may be mistyped, or the page was moved.
    </EmptyState>
  );
}
